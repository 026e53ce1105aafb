"""PySide6 widgets and windows. Nothing here touches torch directly."""

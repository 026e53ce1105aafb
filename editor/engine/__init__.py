"""The document (session, edit stack, recipe), render worker and jobs. QtCore only."""

"""`python -m editor` opens the editor; with a subcommand it runs it headless."""

from editor.cli import main

raise SystemExit(main())

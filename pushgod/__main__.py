from pushgod.cli.main import main

raise SystemExit(main())

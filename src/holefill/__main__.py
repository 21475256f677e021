from holefill.cli import main

raise SystemExit(main())

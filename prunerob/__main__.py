from prunerob.cli import main

raise SystemExit(main())

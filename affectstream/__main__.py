from affectstream.cli import main

raise SystemExit(main())

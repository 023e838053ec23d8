from bastion.interfaces.cli.main import main

raise SystemExit(main())

from xai_study.cli import main

raise SystemExit(main())

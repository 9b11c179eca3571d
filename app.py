"""Launch the xai-study web app (survey, results and live demo) on the bundled demo study.

Same as ``xai-study serve``; run ``python app.py --help`` for the options.
"""

from xai_study.cli import main

if __name__ == "__main__":
    import sys

    raise SystemExit(main(["serve", *sys.argv[1:]]))

"""dist/template.yaml: template.yaml with the function's code being the zip beside it (`make deploy-template`).

`sam deploy --template-file dist/template.yaml` uploads dist/rotator.zip as it is (a CodeUri that
is a zip file is uploaded, not rebuilt or re-zipped), so what reaches Lambda is byte for byte the
package `make test` proved: the deploy job of .github/workflows/ci.yml builds nothing. The
function's only local artifact is its `CodeUri: .` (SAM builds it through the Makefile); exactly
one such line is rewritten, and anything else is refused rather than guessed at.

    python3 -m ops.deploy_template dist/template.yaml
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"
ZIP_NAME = "rotator.zip"

_CODE_URI = re.compile(r"^(?P<indent> +)CodeUri: \.$", re.M)


def deploy_template(text: str, zip_name: str = ZIP_NAME) -> str:
    """The template's text with its one `CodeUri: .` naming `zip_name` (relative to the template)."""
    found = _CODE_URI.findall(text)
    if len(found) != 1:
        raise ValueError(f"expected exactly one `CodeUri: .` in the template, found {len(found)}")
    return _CODE_URI.sub(lambda m: f"{m['indent']}CodeUri: {zip_name}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write it: beside the zip (dist/template.yaml)")
    args = parser.parse_args(argv)
    try:
        text = deploy_template(TEMPLATE.read_text(encoding="utf-8"))
    except ValueError as error:
        print(f"deploy_template: {TEMPLATE.name}: {error}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

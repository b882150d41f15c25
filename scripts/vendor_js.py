"""Fetch the JavaScript the rendered book needs, so maths and widgets work with no network.

Usage: ``python scripts/vendor_js.py book/_vendor``

The files come from the npm registry at pinned versions (``npm pack``); each tarball's sha256 is
checked before anything is unpacked. Nothing third-party is committed: the folder is git-ignored and
rebuilt when a pin changes. Sphinx copies it into the site's ``_static/`` (see ``_config.yml``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# package spec -> (tarball sha256, {path in the package: path under the vendor folder})
PACKAGES = {
    "mathjax@3.2.2": (
        "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
        # the TeX->CommonHTML bundle plus what it loads lazily (extensions, fonts, menu, a11y)
        {
            "es5/tex-chtml.js": "mathjax/tex-chtml.js",
            "es5/input/tex/extensions": "mathjax/input/tex/extensions",
            "es5/output/chtml/fonts/woff-v2": "mathjax/output/chtml/fonts/woff-v2",
            "es5/ui": "mathjax/ui",
            "es5/a11y": "mathjax/a11y",
            "es5/adaptors": "mathjax/adaptors",
            "LICENSE": "mathjax/LICENSE",
        },
    ),
    "requirejs@2.3.7": (
        "31f3330c978fb28684622fe71165dc946432cf0210b2ea8a1ca0233e70f2737d",
        {"require.js": "require.js"},
    ),
    "@jupyter-widgets/html-manager@1.0.6": (
        "6c198ceb99ba7e7526990a1de16e8147ad7d3a714e3fb06741183623c04b5f6e",
        {"dist/embed-amd.js": "embed-amd.js"},
    ),
}
STAMP = ".vendor.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(spec: str, workdir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("vendor_js: `npm` is not on PATH; it is needed once to fetch MathJax and the widget manager")
    result = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(workdir)],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    if result.returncode != 0:
        sys.exit(f"vendor_js: `npm pack {spec}` failed:\n{result.stderr}")
    filename = json.loads(result.stdout)[0]["filename"]
    return workdir / filename.replace("@", "").replace("/", "-")


def main(dest: Path) -> None:
    wanted = {spec: sha for spec, (sha, _) in PACKAGES.items()}
    stamp = dest / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        print(f"vendor_js: {dest} is up to date")
        return
    staging = Path(tempfile.mkdtemp(prefix=".vendor-", dir=dest.parent))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for spec, (sha, files) in PACKAGES.items():
                tarball = _pack(spec, Path(tmp))
                if (got := _sha256(tarball)) != sha:
                    sys.exit(f"vendor_js: {spec}: expected sha256 {sha}, got {got}")
                unpacked = Path(tmp) / tarball.stem
                with tarfile.open(tarball) as tar:
                    tar.extractall(unpacked, filter="data")
                for src, dst in files.items():
                    source, target = unpacked / "package" / src, staging / dst
                    target.parent.mkdir(parents=True, exist_ok=True)
                    (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
                print(f"vendor_js: {spec} ok")
        (staging / STAMP).write_text(json.dumps(wanted, indent=1))
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)  # the folder appears whole or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))

#!/usr/bin/env bash
# Release artefacts, as a packager and a new user meet them (issue 23): for each distribution (the provider at the
# root, the emulator in emulator/) an sdist and a wheel built by `python -m build` from the tracked tree, with no
# setuptools deprecation warning; `twine check --strict`; `check-wheel-contents`; the sdist carries the tests; then
# the provider's wheel alone in a fresh venv with the newest Airflow and Amazon provider from PyPI: every public module
# imports, get_provider_info validates against that Airflow's provider_info.schema.json, and
# `pyright --verifytypes` finds at least MIN_TYPE_COMPLETENESS (0.95) of the public API typed; pyroma rates both
# distributions at least MIN_PYROMA (8).
#
#   bash .ci/check_artefacts.sh          (make dist-check)
#
# The tools (build, twine, check-wheel-contents, pyroma, pyright) go into a throwaway venv; everything lives in a
# temporary folder removed on exit (KEEP=1 keeps it and prints its path).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
python=${PYTHON:-$(PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12 || command -v python3)}
min_completeness=${MIN_TYPE_COMPLETENESS:-0.95}
work=$(mktemp -d)
if [ "${KEEP:-0}" = 1 ]; then echo "work folder: $work"; else trap 'rm -rf "$work"' EXIT; fi
start=$SECONDS
say() { echo "-- $* ($((SECONDS - start)) s)"; }

"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q uv
uv="$work/tools/bin/uv"
VIRTUAL_ENV="$work/tools" "$uv" pip install -q build twine check-wheel-contents pyroma pyright
say "tools installed"

# The tree as a fresh clone has it (tracked files plus new ones not ignored): no build/, egg-info or caches.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && echo "{}"' \
  | tar -cf - -T - | tar -xf - -C "$work/src"

for dist in provider emulator; do
  src="$work/src"; [ "$dist" = emulator ] && src="$work/src/emulator"
  out="$work/dist-$dist"
  PATH="$work/tools/bin:$PATH" "$work/tools/bin/python" -m build --installer uv -o "$out" "$src" > "$work/build-$dist.log" 2>&1 \
    || { cat "$work/build-$dist.log"; echo "FAILED: python -m build ($dist)"; exit 1; }
  if grep -iE "deprecat|SetuptoolsWarning|will no longer be supported" "$work/build-$dist.log"; then
    echo "FAILED: the $dist build warns (above)"; exit 1
  fi
  "$work/tools/bin/twine" check --strict "$out"/*
  "$work/tools/bin/check-wheel-contents" "$out"/*.whl
  say "$dist: built, twine check --strict and check-wheel-contents pass"
done

# What a downstream packager needs to run the tests is in the provider's sdist; the wheel has the package alone.
sdist=$(ls "$work"/dist-provider/*.tar.gz)
listing=$(tar -tzf "$sdist" | cut -d/ -f2-)
for needed in LICENSE CHANGELOG.md pyproject.toml tests/conftest.py tests/unit/test_hook.py example_dags/ \
  emulator/pyproject.toml emulator/LICENSE emulator/src/ses_export_emulator/server.py; do
  grep -qx "$needed" <<< "$listing" || { echo "FAILED: $needed is not in $(basename "$sdist")"; exit 1; }
done
wheel=$(ls "$work"/dist-provider/*.whl)
"$work/tools/bin/python" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = {n.split("/")[0] for n in names}
dist_info = [t for t in tops if t.endswith(".dist-info")]
assert tops - set(dist_info) == {"airflow_provider_sesexport"}, tops
assert "airflow_provider_sesexport/py.typed" in names
assert f"{dist_info[0]}/licenses/LICENSE" in names, names
PY
say "sdist carries the tests, example DAGs and emulator; wheel carries the package, py.typed and LICENSE"

# The provider's wheel alone, with whatever PyPI has newest for Airflow and the Amazon provider.
"$uv" venv -q -p "$python" "$work/fresh"
VIRTUAL_ENV="$work/fresh" "$uv" pip install -q "$wheel"
VIRTUAL_ENV="$work/fresh" "$uv" pip list 2>/dev/null | grep -iE "^(apache-airflow|apache-airflow-providers-amazon|airflow-provider-sesexport) "
export AIRFLOW_HOME="$work/airflow-home"
(cd "$work" && "$work/fresh/bin/python" - <<'PY'
import importlib, json, pkgutil
from pathlib import Path

import airflow
import jsonschema

import airflow_provider_sesexport as package
from airflow_provider_sesexport import get_provider_info

installed = Path(package.__file__).parent
assert "site-packages" in str(installed), installed  # the wheel, not a checkout
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
public = [n for n in names if not any(part.startswith("_") for part in n.split("."))]
for name in public:
    importlib.import_module(name)
print(f"{len(public)} public modules import (of {len(names)} modules)")
schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
jsonschema.validate(get_provider_info(), schema)
print(f"get_provider_info valid against Airflow {airflow.__version__}'s provider_info.schema.json")
PY
)
say "fresh venv: every public module imports, get_provider_info valid"

# Type completeness of the public API as users' type checkers see the installed wheel.
(cd "$work" && PATH="$work/fresh/bin:$PATH" VIRTUAL_ENV="$work/fresh" "$work/tools/bin/pyright" \
  --verifytypes airflow_provider_sesexport --ignoreexternal --outputjson > "$work/verifytypes.json" || true)
"$work/tools/bin/python" - "$work/verifytypes.json" "$min_completeness" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
completeness = report["typeCompleteness"]
score, minimum = completeness["completenessScore"], float(sys.argv[2])
print(f"pyright --verifytypes: {score:.1%} of the public API typed ({completeness['exportedSymbolCounts']})")
if score < minimum:
    for symbol in completeness["symbols"]:
        if symbol["isExported"] and not symbol["isTypeKnown"]:
            print("  ", symbol["name"], *(d["message"].splitlines()[0] for d in symbol["diagnostics"][:1]))
    sys.exit(f"FAILED: type completeness {score:.1%} < {minimum:.0%}")
PY
# pyroma: 8/10 today, its one finding no author e-mail (the project publishes none); a lower rating fails.
for dist in provider emulator; do
  src="$work/src"; [ "$dist" = emulator ] && src="$work/src/emulator"
  if "$work/tools/bin/pyroma" -n "${MIN_PYROMA:-8}" "$src" > "$work/pyroma.log" 2>&1; then rated=ok; else rated=low; fi
  echo "pyroma, $dist: $(grep -E "^Final rating" "$work/pyroma.log")"
  # the findings (the last line is the rating's name)
  grep -vE "^-+$|^Checking|^Getting metadata|^Found |^Final rating" "$work/pyroma.log" | sed '$d' | sed 's/^/   /' || true
  [ "$rated" = ok ] || { echo "FAILED: pyroma rates $dist under ${MIN_PYROMA:-8}"; exit 1; }
done
say "release artefacts: all checks pass"

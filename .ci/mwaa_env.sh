#!/usr/bin/env bash
# Build an MWAA-exact Python environment from the image's constraint file, install our wheel into it the
# way MWAA does (pip install -c airflow_constraints.txt), check pip changed no constrained package, and
# optionally run the unit and e2e suites in it.
#
#   bash .ci/mwaa_env.sh IMAGE install-check|test|deploy|python-version
#
# deploy: also the packages a running MWAA environment has (the Postgres and FAB providers, psycopg2) and moto's
# server, all constrained, for `make deployment` (deployment/). test and deploy install the emulator (emulator/) too.
set -euo pipefail
image=${1:?usage: mwaa_env.sh IMAGE install-check|test|deploy}
action=${2:-test}
here=$(cd "$(dirname "$0")/.." && pwd)
constraints="$here/.ci/constraints/$image/airflow_constraints.txt"
essential="$here/.ci/constraints/$image/mwaa_essential_constraints.txt"
[ -f "$constraints" ] || { echo "no constraints for MWAA image $image" >&2; exit 2; }
case "$image" in
  2.10.*) pyver=3.11.7; pyexe=python3.11 ;;
  *) pyver=3.12.1; pyexe=python3.12 ;;
esac
if [ "$action" = python-version ]; then echo "Python ${pyver%.*}"; exit 0; fi
python=$(PYENV_VERSION=$pyver pyenv which $pyexe 2>/dev/null || command -v $pyexe)
venv="$here/.venv-mwaa-$image"
airflow_version=$(grep -i '^apache-airflow==' "$essential" | cut -d= -f3)

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q uv
  # The image itself: Airflow with the extras MWAA ships, and the Amazon provider with aiobotocore.
  VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install -q "apache-airflow[celery,statsd]==$airflow_version" \
    "apache-airflow-providers-amazon[aiobotocore]" -c "$constraints" -c "$essential"
fi

if [ "$action" = deploy ]; then
  # What else the image runs on: PostgreSQL drivers for the metadata DB and the Celery result backend, the FAB auth
  # manager (its provider is in every image's constraints but 2.11.2's, where Airflow itself pins it), moto's S3 server;
  # Playwright drives Debian's chromium (the browser check of tests/deployment; it downloads no browser of its own).
  extras=(apache-airflow-providers-postgres psycopg2-binary "moto[server,s3]" requests pytest playwright)
  grep -qi '^apache-airflow-providers-fab==' "$constraints" && extras+=(apache-airflow-providers-fab)
  VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install -q "${extras[@]}" -c "$constraints" -c "$essential"
fi

# A wheel folder per image; the build itself writes build/ and *.egg-info in the tree, so .ci/run's concurrent lanes
# take turns at it.
wheel_dir="$here/dist/mwaa-$image"
rm -rf "$wheel_dir"
mkdir -p "$here/dist"
flock "$here/dist/.build-lock" "$venv/bin/python" -m pip wheel -q --no-deps -w "$wheel_dir" "$here" >/dev/null
wheel=$(ls "$wheel_dir"/airflow_provider_sesexport-*.whl)

"$venv/bin/python" -m pip freeze --exclude airflow-provider-sesexport | sort > "$venv/freeze-before.txt"
# As MWAA installs a plugin wheel: a requirements.txt naming the package, --find-links to the wheel's folder, the
# image's constraints.
printf -- '--find-links %s\nairflow-provider-sesexport\n' "$wheel_dir" > "$wheel_dir/requirements.txt"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps -r "$wheel_dir/requirements.txt" -c "$constraints"
"$venv/bin/python" -m pip install -q -r "$wheel_dir/requirements.txt" -c "$constraints"
"$venv/bin/python" -m pip freeze --exclude airflow-provider-sesexport | sort > "$venv/freeze-after.txt"
if ! diff -u "$venv/freeze-before.txt" "$venv/freeze-after.txt"; then
  echo "MWAA $image: installing the wheel changed packages (above)" >&2
  exit 1
fi
echo "MWAA $image: wheel installed, pip left every package alone ($(wc -l < "$venv/freeze-after.txt") packages)"
"$venv/bin/python" -m pip check || true

if [ "$action" = test ] || [ "$action" = deploy ]; then
  # The emulator (its own distribution, emulator/) goes in beside the provider's wheel as a test tool: after the check
  # above, which is about the provider's wheel alone, and constrained like the other tools. Its build writes in the
  # tree too, so it takes the build lock.
  flock "$here/dist/.build-lock" env VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install -q \
    --reinstall-package ses-export-emulator "$here/emulator" -c "$constraints"
fi

if [ "$action" = test ]; then
  # Test tools, constrained too so they cannot move what the image pins.
  # The SQL transfer's tests load into SQLite and PostgreSQL through the image's own providers and driver;
  # tests/unit/test_distributions.py builds the wheels with setuptools, offline.
  VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install -q pytest hypothesis "moto[server,s3]" requests \
    apache-airflow-providers-postgres apache-airflow-providers-sqlite psycopg2-binary "setuptools>=77" jsonschema \
    -c "$constraints"
  cd "$here"
  "$venv/bin/python" -m pytest tests/unit tests/e2e tests/reliability tests/zz_leakcheck -q -p no:cacheprovider ${PYTEST_ARGS:-}
fi

# Quick start: `make run` (set-up + a short QMP run on the 4-task quick-start maze), then `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The quick-start run: Separated + QMP on MazeQuick-4-v0 with its preset (101 epochs = 204k env steps,
# under 8 minutes on 2 CPU cores, plus about 90 s to create the venv the first time). Its log dir
# is replaced on every `make run`. QUICKSTART_RANGE: the mean own-policy success of the last 5
# evaluations over seeds 0-2 of this command (README, "Quick start"); the last line printed compares.
QUICKSTART_DIR   := data/quickstart
QUICKSTART_RANGE := 0.80 1.00
RUN_FLAGS ?=

.PHONY: venv run test test-cuda lint bench clean-venv

# (Re)create the venv when it is missing, or when requirements.txt or pyproject.toml is newer than
# the last install. The project itself is installed editable (setuptools >= 70.1 builds it without
# the wheel package), which adds the `qmp` command.
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is required"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet "setuptools>=70.1"
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(MAKE) --no-print-directory gl
	@touch $(STAMP)

venv: $(STAMP)

# Headless rendering (MUJOCO_GL=egl) needs the EGL/Mesa system libraries.
.PHONY: gl
gl:
	@if ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq libegl1 libgl1-mesa-dri libegl-mesa0 >/dev/null; \
	else echo "note: install libegl1 and libgl1-mesa-dri for headless rendering (render_mode='rgb_array')"; fi

run: $(STAMP)
	rm -rf $(QUICKSTART_DIR)
	$(PY) run.py qmp_dnc --env=MazeQuick-4-v0 --log_dir $(QUICKSTART_DIR) $(RUN_FLAGS)
	$(PY) scripts/quickstart_check.py $(QUICKSTART_DIR) $(QUICKSTART_RANGE)

test: $(STAMP)
	$(PY) -m pytest -q

# The --device cuda hot path (tests/test_cuda.py); every test is skipped, with the reason, without CUDA.
test-cuda: $(STAMP)
	$(PY) -m pytest -q tests/test_cuda.py -rs

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m bench

clean-venv:
	rm -rf $(VENV)

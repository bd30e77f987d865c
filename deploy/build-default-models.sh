#!/usr/bin/env bash
# Rebuilds every default model shipped in refinery/models/default/ from the shared real data.
# Each manifest.json also records its own command; this script is the whole recipe in one place.
#   deploy/build-default-models.sh            (DATA defaults to ../shared/data)
#   DATA=/path/to/shared/data deploy/build-default-models.sh [en zh ...]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
PY=${PYTHON:-.venv/bin/python}
REF=$DATA/lm_reference
PAGES=$DATA/extraction/boilerplate_snippets/pages   # real web pages (never the article benchmark)
LEIPZIG=$DATA/langid/sentences                     # Leipzig news/web sentences
WANT=" ${*:-en de fr es ru zh tox-en tox-zh quality-en quality-zh} "
UDHR=$DATA/langid/udhr/udhr_paragraphs.tsv          # Universal Declaration of Human Rights, 448 languages
refinery() { "$PY" -m refinery.cli "$@"; }

# Perplexity models.  Calibration sample: real web pages of the language where the shared data has
# enough of them (en 80, de 340 pages), else Leipzig news/web sentences, 5 per document.
# fr: lm_reference has no French text.  The French model is trained on the only French prose the
# shared data has (498 Leipzig news/web sentences + the 59 paragraphs of the French UDHR, ~70 KB) and
# calibrated on its own 15% held-out paragraphs (no --calibration: 11 French web pages are too few).
[[ $WANT == *" en "* ]] && refinery models build-lm --lang en \
  --corpus wikitext:$REF/wikitext2/valid.txt wikitext:$REF/wikitext2/test.txt $REF/text/en_wiki_xquad.txt \
  --calibration $PAGES
[[ $WANT == *" de "* ]] && refinery models build-lm --lang de --vocab-size 4000 \
  --corpus $REF/text/de_wiki_xquad.txt --calibration $PAGES
[[ $WANT == *" fr "* ]] && refinery models build-lm --lang fr --vocab-size 4000 --heldout-percent 15 \
  --corpus $LEIPZIG/fr.txt udhr:French:$UDHR
[[ $WANT == *" es "* ]] && refinery models build-lm --lang es --vocab-size 4000 \
  --corpus $REF/text/es_wiki_xquad.txt --calibration $LEIPZIG/es.txt --calibration-lines-per-doc 5
[[ $WANT == *" ru "* ]] && refinery models build-lm --lang ru --vocab-size 4000 \
  --corpus $REF/text/ru_wiki_xquad.txt --calibration $LEIPZIG/ru.txt --calibration-lines-per-doc 5
[[ $WANT == *" zh "* ]] && refinery models build-lm --lang zh \
  --corpus $REF/text/zh_wiki_cmrc2018.txt $REF/text/zh_wiki_xquad.txt \
  --calibration $LEIPZIG/zh.txt --calibration-lines-per-doc 5

# Toxicity classifiers.  en: Davidson + OLID, 10% hash split held out.  zh: COLD train, COLD dev held out.
# en hyper-parameters (5 epochs, lr 0.2, subwords 3-5) were chosen on a validation split carved out
# of the training rows, never on the held-out rows the manifest reports.  WikiText paragraphs are
# added as clean examples: trained on tweets alone, the classifier flagged 3-6% of news-article
# paragraphs (never trained on) as toxic; with them, 1.1%.
[[ $WANT == *" tox-en "* ]] && refinery models build-toxicity --lang en --epoch 5 --lr 0.2 --minn 3 --maxn 5 \
  --data davidson:$DATA/toxicity/davidson_en/data/labeled_data.csv olid:$DATA/toxicity/olid_en/olid-training-v1.0.tsv \
         clean-wikitext:$REF/wikitext2/valid.txt clean-wikitext:$REF/wikitext2/test.txt
[[ $WANT == *" tox-zh "* ]] && refinery models build-toxicity --lang zh \
  --data cold:$DATA/toxicity/cold_zh/train.csv --eval cold:$DATA/toxicity/cold_zh/dev.csv
# Quality classifiers (DCLM recipe: fastText on word bigrams; docs/models.md).  Positives: reference prose
# (English Wikipedia + Project Gutenberg, Chinese Wikipedia).  Negatives: what Refinery's own extract stage
# (trafilatura as web-en runs it, and its resiliparse extractor) produces from real pages: WCXB dev pages of the
# half of its domains not held out (sha1(domain) % 100 >= 50); the other half is never trained on and is where
# `--eval` measures main content vs boilerplate.  WCXB gold main content is NOT a positive: its re-wrapped lines
# taught the classifier that short lines are good (validation ROC-AUC 0.08).  Buckets are calibrated on the
# real crawl pages the build never trains on (warc/real_pages, warc/dolma_wget; Chinese: the CC slice and the
# Leipzig zh news/web sentences).  Settings were chosen on validation domains (sha1 % 100 in 50..64) of a
# build trained on domains 65..99, never on the held-out half reported.
WCXB=$DATA/extraction/wcxb_dev/ground_truth.jsonl.gz
[[ $WANT == *" quality-en "* ]] && refinery models build-quality --lang en --max-docs-per-input 1500 \
  --positive jsonl:$REF/enwiki/enwiki_2015_sample.jsonl.gz jsonl:$REF/gutenberg_en/gutenberg_books.jsonl.gz \
  --negative wcxb-pages:$WCXB wcxb-pages-resiliparse:$WCXB \
  --eval wcxb:$WCXB --calibration $DATA/warc/real_pages $DATA/warc/dolma_wget
[[ $WANT == *" quality-zh "* ]] && refinery models build-quality --lang zh --max-docs-per-input 1500 \
  --positive lines:$REF/text/zh_wiki_cmrc2018.txt lines:$REF/text/zh_wiki_xquad.txt \
  --negative pages:$DATA/warc/resiliparse_tests pages:$DATA/warc/real_pages \
             pages-resiliparse:$DATA/warc/resiliparse_tests pages-resiliparse:$DATA/warc/real_pages \
  --calibration lines:$LEIPZIG/zh.txt
du -ch refinery/models/default | tail -1

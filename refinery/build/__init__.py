"""The model build commands (`refinery models build-lm`, `build-quality`) where they run
Refinery's own stages: calibration and training text extracted from real pages by the extract and
langid stages, as the pipeline would.  Above the stages in the layers; `refinery/models/` (the
scoring models the stages load) stays below them."""

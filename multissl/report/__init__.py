"""One report across modalities: ``multissl report RUNS_DIR --out DIR`` turns run folders and bench
records into a static HTML page (``index.html``, pictures in ``img/``) and ``report.json`` with the
same numbers; :mod:`multissl.report.card` writes Hugging Face model cards for exported models.

Modules: ``collect`` (find and read runs / bench records), ``metrics`` (baselines, intervals, mean +-
std), ``plots`` (curves per recipe), ``build`` (the report's numbers), ``html`` (the page),
``card`` (model cards), ``browser`` (the headless-Chromium check).
"""

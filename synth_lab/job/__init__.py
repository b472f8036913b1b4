"""The job layer: a config as a job for the learning API, and back.

- :mod:`~synth_lab.job.payload`: config -> the ``POST /learning/jobs`` body (the synth-ai CLI's
  form and its Python SDK's).
- :mod:`~synth_lab.job.requestform`: the parts of a body beyond the config (validation file,
  step budget, suffix) in either form, read back.
- :mod:`~synth_lab.job.jobspec`: body -> the training config a server's worker runs (the
  inverse of :func:`~synth_lab.job.payload.build_payload`), with every refusal coded.
- :mod:`~synth_lab.job.dryrun`: everything a submission would check, with nothing sent.
- :mod:`~synth_lab.job.report`: the dry run as text and HTML.

Nothing is imported here, so each module loads only what it needs.
"""

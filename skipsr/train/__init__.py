"""Training stages, one command each (docs/design.md section 6): `python -m skipsr.train.sr`, `.predictor`, ..."""

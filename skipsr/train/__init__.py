"""Training stages, one command each (DESIGN section 6): `python -m skipsr.train.sr`, `.predictor`, ..."""

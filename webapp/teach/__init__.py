"""Teach: teacher models explain the student's mistakes (SALAM, LEMA, FAIR, GSI, LbT); their output is Feedback."""

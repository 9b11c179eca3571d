"""User studies: the study folder format (:mod:`.spec`), per-participant assignment
(:mod:`.assign`), the survey flow (:mod:`.flow`) and storage (:mod:`.db`). No gradio here.
"""

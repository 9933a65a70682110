"""Retraining a served model on fresh normal data, and replacing it only when the new one is no worse.

``data`` gathers what a retrain trains and is judged on, ``compare`` decides between the serving
champion and the new challenger, ``worker`` is the separate training process, ``run`` is one
retrain job from start to recorded decision, and ``schedule`` runs those jobs on a timetable.
"""

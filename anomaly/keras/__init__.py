"""Detectors built on Keras 3 networks: the shared base class and the network bodies.

Kept apart from the core so that listing plugins, reading a manifest or scoring with a
non-Keras detector never imports Keras or TensorFlow.
"""

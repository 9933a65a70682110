"""The reference detectors the GAN detectors are measured against: IsolationForest, PCA and an autoencoder.

Each module is a plugin of its own (entry points ``iforest``, ``pca`` and ``autoencoder``), so one
can be reported broken or left out without the others. They are ordinary detectors: trained,
saved, loaded, evaluated and scored like the GANs, and the quality benchmark runs them from here.
"""

"""Image files to the uint8 frames training and prediction read, without torch.

``decode`` turns any image file into uint8 RGB at the input size, the one decoder of every
path (cache, training without it, torch and ONNX prediction); ``cache`` keeps each frame
decoded once on disk for every job that reads it; ``frames`` gives a training job its
frames after checking every listed image, naming the unreadable ones all at once.
"""

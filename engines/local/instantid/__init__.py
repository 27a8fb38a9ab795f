"""The studio's own InstantID: SDXL + IdentityNet (a ControlNet on the face's keypoints) +
the face embedding projected into extra cross-attention tokens (IP-Adapter style).

``projection``  the face-embedding resampler and the attention processors that read its tokens
``face``        the face analyser interface, insightface behind it, and the keypoint drawing
``pipeline``    the denoising loop tying them to SDXL
"""

"""Local engines: diffusers pipelines run on this machine's GPU (or CPU).

torch and diffusers are imported only inside functions here, when a local job runs.
"""

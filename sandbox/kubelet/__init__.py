"""The sandbox kubelet: the node agent that runs pods as real processes (see `kubelet.py`)."""

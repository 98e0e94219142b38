"""cifarlab.data: dataset sources, the decoded cache, splits, statistics and sample grids."""

from cifarlab.data.sample_grid import sample_grid
from cifarlab.data.sources import Dataset, data_root, load_dataset
from cifarlab.data.splits import examples_per_class, validation_split
from cifarlab.data.stats import channel_stats, dataset_info

__all__ = ["Dataset", "channel_stats", "data_root", "dataset_info", "examples_per_class",
           "load_dataset", "sample_grid", "validation_split"]

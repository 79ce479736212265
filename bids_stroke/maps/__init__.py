"""Group maps in template space: mean attention and lesion probability per group."""

from bids_stroke.maps.group_maps import group_map_path, summary_path, write_group_maps
from bids_stroke.maps.groups import (
    ALL_GROUP,
    CLASSIFICATION_GROUPS,
    HEMISPHERES,
    MapGroup,
    attention_summary,
    classification_groups,
    hemisphere_of,
    map_groups,
    mean_map,
)

__all__ = [
    "ALL_GROUP",
    "CLASSIFICATION_GROUPS",
    "HEMISPHERES",
    "MapGroup",
    "attention_summary",
    "classification_groups",
    "group_map_path",
    "hemisphere_of",
    "map_groups",
    "mean_map",
    "summary_path",
    "write_group_maps",
]

"""Group maps in template space: mean attention and lesion probability per group."""

from bids_stroke.maps.group_maps import (
    ALL_GROUP,
    CLASSIFICATION_GROUPS,
    HEMISPHERES,
    MapGroup,
    attention_summary,
    classification_groups,
    group_map_path,
    hemisphere_of,
    map_groups,
    mean_map,
    summary_path,
    write_group_maps,
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

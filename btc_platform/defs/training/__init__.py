import dagster as dg

from btc_platform.defs.training.assets import MODEL_ASSETS
from btc_platform.defs.training.sensors import train_on_new_dataset

defs = dg.Definitions(assets=MODEL_ASSETS, sensors=[train_on_new_dataset])

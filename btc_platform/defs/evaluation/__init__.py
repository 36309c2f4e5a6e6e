import dagster as dg

from btc_platform.defs.evaluation.assets import (EVALUATION_ASSETS, LLM_EVALUATION_ASSETS, model_champion_1h,
                                                 model_champion_action_24h, model_leaderboard_1h)

defs = dg.Definitions(assets=[*EVALUATION_ASSETS, *LLM_EVALUATION_ASSETS, model_leaderboard_1h, model_champion_1h,
                              model_champion_action_24h])

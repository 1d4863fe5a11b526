from engagement_assets.deploy import PRODUCTION_INSTANCE

print(PRODUCTION_INSTANCE)

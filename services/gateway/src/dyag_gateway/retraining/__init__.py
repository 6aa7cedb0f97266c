"""Event-triggered retraining in the gateway: catalog changes start challenger pipelines, a gate decides, each
catalog's champion answers (`service.Retraining`, the facade the routes use)."""

from dyag_gateway.retraining.service import Retraining

__all__ = ["Retraining"]

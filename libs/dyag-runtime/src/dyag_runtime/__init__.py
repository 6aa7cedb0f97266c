"""The service runtime every Dyag service stands on. Services stay thin shells around libs/dyag-core."""

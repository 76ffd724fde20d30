"""Pure logic: controllers, state machines, classifiers, safety checks, plan validation, stores.

Nothing under this package imports rclpy; it is unit-tested directly.
"""

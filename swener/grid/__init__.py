"""The experiment grid outside Make: the same runs (plan.py) executed as Ray tasks (ray_runner.py).

`swener.grid.plan` needs only the standard library; Ray is imported by `ray_runner` alone
(the optional `ray` extra).
"""

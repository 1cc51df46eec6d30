"""Time: partitions, the landing zone, sensors, schedules, jobs, automation and freshness."""

"""Sources turn the outside world into a Window; none of them judges.

- `docker`: the live stack through the Docker Engine (cgroup files where readable).
- `replay`: the step doc's docker stats CSV, or the plugin's own recording.
- `prometheus`: a past window from cAdvisor series.
"""

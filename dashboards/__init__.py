"""Dashboards: the Dash web app. A face only: it calls the other packages' public functions."""

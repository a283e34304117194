// Package e2e holds the end-to-end tests: the real gowsgi binary, started on
// loopback ports with the apps of testdata/ and examples/, driven by real
// clients and real web servers in front. One file per feature area a user
// would name — protocols, web servers in front, PEP 3333, frameworks,
// process management, reload and signals, faults, limits, uWSGI options,
// mounts and virtualenvs, logging, static files, stats and metrics, CGI,
// uWSGI's Python module, the spooler and mules —
// and internal/harness starts and watches the binary for all of them.
//
// The test apps of testdata/ share their helpers through testdata/apphelp.py;
// their docstrings list their routes.
package e2e

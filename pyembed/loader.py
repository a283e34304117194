"""Imports a gowsgi worker's WSGI application.

load() returns (app, None), or (None, summary) after printing any traceback
to stderr, where summary is one line that names what failed and the fix.
"""
import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import traceback


def load(paths, module, wsgi_file, callable_name):
    # The current directory (the master applied --chdir) comes first, then
    # --pythonpath entries, as uWSGI orders them.
    sys.path[0:0] = [os.getcwd()] + list(paths)
    if wsgi_file:
        where = 'file "%s"' % wsgi_file
        name = _file_module_name(wsgi_file)
    else:
        where = 'module "%s"' % module
        name = module
    try:
        mod = _load_file(name, wsgi_file) if wsgi_file else importlib.import_module(module)
    except BaseException as exc:  # SystemExit or KeyboardInterrupt from the app's import too
        traceback.print_exc()
        return None, "cannot import %s: %s: %s" % (where, type(exc).__name__, exc)
    if not hasattr(mod, callable_name):
        return None, '%s has no callable "%s" (use --callable or module:callable)' % (where, callable_name)
    app = getattr(mod, callable_name)
    if not callable(app):
        return None, '"%s" in %s is not callable' % (callable_name, where)
    return app, None


def _file_module_name(path):
    # uWSGI names a --wsgi-file module "uwsgi_file_" plus its path with
    # ".py" dropped and every other non-identifier character as "_".
    stem = path[:-3] if path.endswith(".py") else path
    return "uwsgi_file_" + re.sub(r"\W", "_", stem)


def _load_file(name, path):
    path = os.path.abspath(path)
    sys.path.insert(0, os.path.dirname(path))
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod

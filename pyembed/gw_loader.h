/*
 * The loader: Python that imports a worker's WSGI application. It is kept
 * as C text because the zygote runs it before the Go runtime starts; the
 * Go side passes nothing, gw_load reads it from here.
 *
 * load() returns (app, None), or (None, summary) after printing any
 * traceback to stderr, where summary is one line that names what failed
 * and the fix.
 */
#ifndef GW_LOADER_H
#define GW_LOADER_H

static const char gw_loader_source[] =
    "import importlib\n"
    "import importlib.machinery\n"
    "import importlib.util\n"
    "import os\n"
    "import re\n"
    "import sys\n"
    "import traceback\n"
    "\n"
    "\n"
    "def load(paths, module, wsgi_file, callable_name):\n"
    "    # The current directory (the master applied --chdir) comes first, then\n"
    "    # --pythonpath entries, as uWSGI orders them.\n"
    "    sys.path[0:0] = [os.getcwd()] + list(paths)\n"
    "    if wsgi_file:\n"
    "        where = 'file \"%s\"' % wsgi_file\n"
    "        name = _file_module_name(wsgi_file)\n"
    "    else:\n"
    "        where = 'module \"%s\"' % module\n"
    "        name = module\n"
    "    try:\n"
    "        mod = _load_file(name, wsgi_file) if wsgi_file else importlib.import_module(module)\n"
    "    except BaseException as exc:  # SystemExit or KeyboardInterrupt from the app's import too\n"
    "        traceback.print_exc()\n"
    "        return None, \"cannot import %s: %s: %s\" % (where, type(exc).__name__, exc)\n"
    "    if not hasattr(mod, callable_name):\n"
    "        return None, '%s has no callable \"%s\" (use --callable or module:callable)' % (where, callable_name)\n"
    "    app = getattr(mod, callable_name)\n"
    "    if not callable(app):\n"
    "        return None, '\"%s\" in %s is not callable' % (callable_name, where)\n"
    "    return app, None\n"
    "\n"
    "\n"
    "def _file_module_name(path):\n"
    "    # uWSGI names a --wsgi-file module \"uwsgi_file_\" plus its path with\n"
    "    # \".py\" dropped and every other non-identifier character as \"_\".\n"
    "    stem = path[:-3] if path.endswith(\".py\") else path\n"
    "    return \"uwsgi_file_\" + re.sub(r\"\\W\", \"_\", stem)\n"
    "\n"
    "\n"
    "def _load_file(name, path):\n"
    "    path = os.path.abspath(path)\n"
    "    sys.path.insert(0, os.path.dirname(path))\n"
    "    loader = importlib.machinery.SourceFileLoader(name, path)\n"
    "    spec = importlib.util.spec_from_loader(name, loader)\n"
    "    mod = importlib.util.module_from_spec(spec)\n"
    "    sys.modules[name] = mod\n"
    "    try:\n"
    "        loader.exec_module(mod)\n"
    "    except BaseException:\n"
    "        del sys.modules[name]\n"
    "        raise\n"
    "    return mod\n";

#endif

"""A mule's program (--mule=mule_echo.py): waits for messages and records
each as the file echo-MESSAGE in the folder gowsgi or uWSGI started in,
holding the mule's pid and mule_id(), until the message b"exit"."""

import os

import uwsgi

while True:
    message = uwsgi.mule_get_msg()
    if message == b"exit":
        break
    name = "echo-" + message.decode()
    with open(name + ".tmp", "w") as f:
        f.write("%d %d" % (os.getpid(), uwsgi.mule_id()))
    os.rename(name + ".tmp", name)  # whole, as a test sees it

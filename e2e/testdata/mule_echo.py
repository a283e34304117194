"""A mule's program (--mule=mule_echo.py): waits for messages and records
each as the file echo-MESSAGE in the folder gowsgi or uWSGI started in,
holding the mule's pid and mule_id(), until the message b"exit"."""

import os

import uwsgi

while True:
    message = uwsgi.mule_get_msg()
    if message == b"exit":
        break
    with open("echo-" + message.decode(), "w") as f:
        f.write("%d %d" % (os.getpid(), uwsgi.mule_id()))

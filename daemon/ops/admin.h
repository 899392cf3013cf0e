/*
 * admin: ZooKeeper's AdminServer: the four-letter words and a few more
 * commands as JSON over HTTP, at http://admin.serverAddress:admin.serverPort
 * admin.commandURL/NAME (default http://0.0.0.0:8080/commands/NAME), with
 * ZooKeeper 3.8's command names, aliases and keys (docs/admin-api.md lists
 * where znoded's answers differ and why).  GET admin.commandURL lists the
 * commands.  It runs on the server's loop, on httpd.c; its figures come
 * from fourlw.h, the same as the four-letter words'.
 *
 * Hooks (each a single call in server.c):
 *   admin_start(srv)   in server_start, after listening
 *   admin_stop(srv)    in server_stop
 */
#ifndef ZNODED_ADMIN_H
#define ZNODED_ADMIN_H

struct server;
struct httpd_request;
struct httpd_reply;
struct json;

/*
 * Serves srv's AdminServer unless admin.enableServer=false.  Returns 0, or
 * ZN_IO / ZN_BADARGUMENTS / ZN_NOMEMORY (logged) when zoo.cfg asked for it
 * (admin.enableServer=true or admin.serverPort) and it cannot be served; a
 * server left on the defaults that cannot bind 8080 logs a warning and goes
 * on without it, as a ZooKeeper ensemble member does.
 */
int admin_start(struct server *srv);

/* Closes the listener and its connections (freed as the loop runs on).
 * Safe when admin_start never ran or served nothing. */
void admin_stop(struct server *srv);

/* Ends an answer as ZooKeeper's CommandResponse ends: "command" (the
 * primary name), "error" (NULL writes null), and the closing brace of the
 * object begun with json_begin_object. */
void admin_answer_end(struct json *j, const char *command, const char *error);

/* Answers one request for srv (the handler behind the listener; exposed for
 * the unit tests).  Follows httpd_handler_fn's contract. */
int admin_answer(struct server *srv, const struct httpd_request *req, struct httpd_reply *reply);

#endif

/* telnet.c - placeholder until this concern lands. */
#include "netlua.h"

void nl_open_telnet(lua_State *L) { (void)L; }

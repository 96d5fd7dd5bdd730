/* udp.c - placeholder until this concern lands. */
#include "netlua.h"

void nl_open_udp(lua_State *L) { (void)L; }

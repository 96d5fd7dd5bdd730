/* lookup.c - placeholder until this concern lands. */
#include "netlua.h"

void nl_open_lookup(lua_State *L) { (void)L; }

/* ftp.c - placeholder until this concern lands. */
#include "netlua.h"

void nl_open_ftp(lua_State *L) { (void)L; }

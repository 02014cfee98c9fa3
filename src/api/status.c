/* The one table from contract codes to names and HTTP statuses. */
#include "api/api.h"

static const struct {
        const char *name;
        unsigned http;
} codes[_API_CODE_MAX] = {
        [API_OK] = {"OK", 200},
        [API_INVALID_REQUEST] = {"INVALID_REQUEST", 400},
        [API_PAYLOAD_TOO_LARGE] = {"PAYLOAD_TOO_LARGE", 413},
        [API_UNSUPPORTED_MEDIA_TYPE] = {"UNSUPPORTED_MEDIA_TYPE", 415},
        [API_SYNTAX_ERROR] = {"SYNTAX_ERROR", 400},
        [API_MISSING_MAIN] = {"MISSING_MAIN", 400},
        [API_RUNTIME_ERROR] = {"RUNTIME_ERROR", 422},
        [API_NOT_JSON_SERIALIZABLE] = {"NOT_JSON_SERIALIZABLE", 422},
        [API_TIMEOUT] = {"TIMEOUT", 422},
        [API_MEMORY_LIMIT] = {"MEMORY_LIMIT", 422},
        [API_OUTPUT_LIMIT] = {"OUTPUT_LIMIT", 422},
        [API_CRASHED] = {"CRASHED", 422},
        [API_UNAUTHORIZED] = {"UNAUTHORIZED", 401},
        [API_OVERLOADED] = {"OVERLOADED", 503},
        [API_INTERNAL] = {"INTERNAL", 500},
        [API_NOT_FOUND] = {"NOT_FOUND", 404},
        [API_METHOD_NOT_ALLOWED] = {"METHOD_NOT_ALLOWED", 405},
        [API_CLIENT_CLOSED] = {"CLIENT_CLOSED", 499}, /* nginx's convention */
};

const char *api_code_name(ApiCode c)
{
        return (unsigned) c < _API_CODE_MAX ? codes[c].name : "INTERNAL";
}

unsigned api_code_http(ApiCode c)
{
        return (unsigned) c < _API_CODE_MAX ? codes[c].http : 500;
}

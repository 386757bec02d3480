package httpapi

func (h *Handler) routeUI() {}
